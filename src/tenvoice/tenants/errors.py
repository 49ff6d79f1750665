from tenvoice.platform.errors import BadRequest, Forbidden, NotFound, Unauthorized


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    title = "Tenant not found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "API key not found"


class MissingCredentials(Unauthorized):
    code = "unauthorized"
    title = "Missing or invalid credentials"


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"
    title = "Invalid API key"


class AdminRequired(Forbidden):
    code = "admin_required"
    title = "This route needs the platform admin key"


class TenantMismatch(Forbidden):
    code = "tenant_mismatch"
    title = "X-Tenant-Id names another tenant than the API key's"


class TenantRequired(BadRequest):
    code = "tenant_required"
    title = "X-Tenant-Id is required with the admin key"


class InvalidTenantHeader(BadRequest):
    code = "invalid_tenant_id"
    title = "X-Tenant-Id is not a UUID"
