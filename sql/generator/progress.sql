-- The generator's own bookkeeping, applied by `findemo generate` (idempotent).
-- One row per seed: the next transaction number to write. It is advanced in the same
-- database transaction as each batch, so it always matches what was committed; a run
-- that was killed resumes here, and never writes a transaction twice.
-- Not in the CDC publication: it is not business data.

CREATE TABLE IF NOT EXISTS findemo_generator_progress (
    seed        bigint PRIMARY KEY,
    next_seq    bigint NOT NULL DEFAULT 0 CHECK (next_seq >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
