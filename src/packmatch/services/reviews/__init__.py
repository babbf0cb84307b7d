"""Reviews: decisions by people on match results and package runs (SPEC §3 Reviews).

- `rules`: what a decision may say (pure): the reference row it concerns, bulk items' problems.
- `results`: review one result or many at once (all or nothing), and a result's history.
- `runs`: review a final package run, and its history.
- `events`: after the commit: the `review.recorded` log line, metrics, webhook messages.
"""
