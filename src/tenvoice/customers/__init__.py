"""A tenant's customers: the people and companies it bills."""
