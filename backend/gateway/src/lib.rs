//! The API gateway in API Management's role: CORS, validate-jwt, rate limits, forwarding with the function key.
