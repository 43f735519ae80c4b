-- The search index takes each commit's rows into the index itself instead of GIN's pending list. With the list, the
-- insert that fills it merges the whole list into the index inside its commit, and every message waiting on that
-- commit waits with it: a pause in the tail at a steady rate (BENCHMARKS.md, PostgreSQL with search). Searches no
-- longer read an unsorted list either. What the list holds now is merged first.
ALTER INDEX messages_search SET (fastupdate = off);
SELECT gin_clean_pending_list('messages_search');
