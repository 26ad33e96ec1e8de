//! The `error_code` values a client can meet, in one list: the OpenAPI
//! document publishes them as the enum of `ErrorEnvelope.error_code`, and
//! docs/api.md explains each ("Status codes and error codes"). A test keeps
//! the list, the docs table and the codes used in the source in step.

/// Every `error_code` the API answers with.
pub const ERROR_CODES: &[&str] = &[
    // 400
    "MALFORMED_JSON",
    "INVALID_BODY",
    "INVALID_PATH",
    "INVALID_QUERY",
    "INVALID_IDEMPOTENCY_KEY",
    "INVALID_IF_MATCH",
    "ACCOUNT_REQUIRED",
    "INVALID_ACCOUNT_ID",
    "NO_SESSION",
    "POSITION_NOT_REACHED",
    // 401
    "AUTH_REQUIRED",
    "INVALID_TOKEN",
    "TOKEN_EXPIRED",
    "TOKEN_REVOKED",
    "TOKEN_REUSED",
    "USER_INACTIVE",
    "INVALID_API_KEY",
    "INVALID_CREDENTIALS",
    "WRONG_PASSWORD",
    // 402
    "INSUFFICIENT_CREDITS",
    // 403
    "FORBIDDEN",
    // 404
    "NOT_FOUND",
    "UNKNOWN_COMMAND",
    // 405
    "METHOD_NOT_ALLOWED",
    // 409
    "VERSION_CONFLICT",
    "CONCURRENCY_CONFLICT",
    "EMAIL_TAKEN",
    "SLUG_TAKEN",
    "OWNER_PROTECTED",
    "ALREADY_EXISTS",
    "RESERVATION_NOT_FOUND",
    "RESERVATION_CONFLICT",
    "JOB_FINISHED",
    "JOB_SUPERSEDED",
    "JOB_NOT_STARTED",
    // 408, 413, 415
    "REQUEST_TIMEOUT",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    // 422
    "VALIDATION_ERROR",
    "INVALID_EMAIL",
    "INVALID_PASSWORD",
    "INVALID_NAME",
    "INVALID_SLUG",
    "INVALID_URL",
    "INVALID_STATUS",
    "INVALID_ROLE",
    "UNKNOWN_SITE",
    "SITE_LIMIT",
    "SECTOR_LIMIT",
    "UNKNOWN_PLAN",
    "INVALID_AMOUNT",
    "INVALID_REASON",
    "INVALID_RESERVATION_ID",
    "CAPTURE_EXCEEDS_RESERVATION",
    "INVALID_CHARGE",
    "INVALID_PROGRESS",
    "IDEMPOTENCY_KEY_REUSED",
    "INVALID_KEYWORD",
    "INVALID_VOLUME",
    "INVALID_DIFFICULTY",
    "INVALID_INTENT",
    "INVALID_CPC",
    "EMPTY_FILE",
    "NOT_A_TEXT_FILE",
    "INVALID_ENCODING",
    "NO_KEYWORD_COLUMN",
    "TOO_MANY_ROWS",
    "MALFORMED_CSV",
    "EMPTY_SELECTION",
    "INVALID_STRATEGY",
    "STRATEGY_UNAVAILABLE",
    "TOO_MANY_KEYWORDS",
    "INVALID_NUM_CLUSTERS",
    "API_KEY_REVOKED",
    // 429
    "RATE_LIMITED",
    // 503
    "PROJECTION_BEHIND",
    "NOT_READY",
    "DATABASE_UNAVAILABLE",
    // 4xx the framework produced without a code of ours
    "HTTP_ERROR",
    // 500
    "INTERNAL_ERROR",
];
