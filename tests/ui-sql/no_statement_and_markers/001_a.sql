-- add a: what this migration does.

-- (not written yet)
