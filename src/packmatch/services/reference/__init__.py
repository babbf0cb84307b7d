"""Reference data: the rows documents are matched against.

- `datasets`: create (JSON or CSV), list, read rows, delete.
- `csv_reader`, `csv_columns`, `csv_import`: the one-pass CSV reader, column typing and the bulk import.
- `rules`: the value and row rules shared by the JSON and CSV paths.
- `cache`: the per-process LRU of built match indexes.
"""
