"""Use cases: load → engine → save → publish. No web or queue framework is imported here."""
