-- Every saved connection gets a new generation from one sequence, so a
-- token minted for one registration can be told from a token of the next
-- one, even after the row was deleted and registered again. The
-- token-broker checks a cached token's generation against the row before
-- handing it out, and removing or replacing a connection retires its
-- generation (fa_tokens::Retired) in every process that caches tokens.
CREATE SEQUENCE connection_generations;
ALTER TABLE connections ADD COLUMN generation bigint NOT NULL DEFAULT nextval('connection_generations');
