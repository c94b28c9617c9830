"""Operations on a whole project: its stats and its duplication (export and import next)."""
