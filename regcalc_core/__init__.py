"""The domain core: vocabulary and rules of regcalc with no Dagster, engine or storage import.

Both ``regcalc_assets`` and ``regcalc_resources`` import from here; nothing here imports them.
"""
