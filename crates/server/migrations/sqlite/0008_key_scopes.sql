-- What each API key may do (docs/reference.md#scopes): its scopes, separated by spaces. The
-- keys made before scopes existed keep every scope, so that they keep working; contactd
-- writes the column on every new key, so the default serves only those.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL
    DEFAULT 'contacts:read contacts:write contacts:export fields:write events:read webhooks:manage';
