-- A key's own rate limit (docs/reference.md#rate-limits), requests per second and burst;
-- NULL for the server's limit, which is what every key made before had.
ALTER TABLE api_keys ADD COLUMN rate_per_second INTEGER;
ALTER TABLE api_keys ADD COLUMN rate_burst INTEGER;
