"""History at scale: retention (pruning final runs past their age) and the archive (export/import)."""
