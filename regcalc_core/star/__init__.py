"""The generic star-schema operator (design document, Appendix A): it knows nothing about
liquidity. ``spec`` reads and classifies a declarative spec; ``build`` turns tables into
dimensions, facts, bridges, a date dimension and aggregates on either engine."""
