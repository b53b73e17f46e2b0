"""The reporting layer: the dbt project over the star schema (marts, aggregates, disclosures)."""
