"""Deterministic adjustment-rule sets for the benchmarks: a realistic mix of overlays across the
three stages (about two thirds deal-level, the rest split between aggregation and final), with
conditions of the kinds treasury teams write: product and counterparty segments, currencies,
maturity buckets, single entities, single components."""

from __future__ import annotations

COUNTERPARTY_TYPES = ["NON_FINANCIAL_CORPORATE", "RETAIL", "SMALL_BUSINESS", "BANK", "OTHER_FINANCIAL", "SOVEREIGN"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF"]
COMPONENTS = ["OUTFLOWS", "INFLOWS", "ASF", "RSF", "HQLA_L2A"]


def _entity(i: int, entities: int) -> str:
    return f"LE_{(i % entities) + 1:0{max(3, len(str(entities)))}d}"


def _deal_rule(i: int, entities: int) -> dict:
    """One of eight deal-level templates, varied by ``i``."""
    cp, ccy = COUNTERPARTY_TYPES[i % len(COUNTERPARTY_TYPES)], CURRENCIES[i % len(CURRENCIES)]
    templates = [
        ([{"field": "product", "operator": "in", "value": ["LOAN", "MORTGAGE"]},
          {"field": "counterparty_type", "operator": "==", "value": cp}],
         [{"field": "rsf_factor", "operation": "multiply", "value": 1.05}]),
        ([{"field": "product", "operator": "==", "value": "SECURITY"},
          {"field": "security_hqla_level", "operator": "==", "value": "L2A"},
          {"field": "currency", "operator": "==", "value": ccy}],
         [{"field": "haircut", "operation": "add", "value": 0.02}]),
        ([{"field": "product", "operator": "==", "value": "DEPOSIT"},
          {"field": "currency", "operator": "==", "value": ccy},
          {"field": "insured", "operator": "==", "value": False}],
         [{"field": "outflow_rate", "operation": "multiply", "value": 1.1}]),
        ([{"field": "product", "operator": "==", "value": "REVERSE_REPO"},
          {"field": "days_to_maturity", "operator": "between", "value": [0, 30]}],
         [{"field": "inflow_rate", "operation": "multiply", "value": 0.9}]),
        ([{"field": "entity_id", "operator": "==", "value": _entity(i, entities)},
          {"field": "product", "operator": "==", "value": "MORTGAGE"}],
         [{"field": "rsf_factor", "operation": "set", "value": 0.7}]),
        ([{"field": "product", "operator": "in", "value": ["BORROWING", "ISSUED_DEBT"]},
          {"field": "amount", "operator": ">", "value": 5_000_000}],
         [{"field": "asf_factor", "operation": "multiply", "value": 0.95},
          {"field": "outflow_rate", "operation": "add", "value": 0.05}]),
        ([{"field": "currency", "operator": "==", "value": ccy},
          {"field": "maturity_date", "operator": "<", "value": "2024-07-31"},
          {"field": "product", "operator": "not_in", "value": ["CASH", "CENTRAL_BANK_RESERVE"]}],
         [{"field": "amount", "operation": "multiply", "value": 0.99}]),
        ([{"field": "counterparty_type", "operator": "==", "value": cp},
          {"field": "performing", "operator": "==", "value": False}],
         [{"field": "rsf_factor", "operation": "set", "value": 1.0},
          {"field": "inflow_rate", "operation": "set", "value": 0.0}]),
    ]
    conditions, adjustments = templates[i % len(templates)]
    return {"stage": "deal_enrichment", "conditions": conditions, "adjustments": adjustments}


def _aggregation_rule(i: int, entities: int) -> dict:
    return {"stage": "aggregation",
            "conditions": [{"field": "entity_id", "operator": "==", "value": _entity(i * 3, entities)},
                           {"field": "component", "operator": "==", "value": COMPONENTS[i % len(COMPONENTS)]}],
            "adjustments": [{"field": "amount", "operation": "multiply", "value": 1.02 + 0.01 * (i % 3)}]}


def _final_rule(i: int, entities: int) -> dict:
    field = ["hqla", "total_outflows", "asf", "rsf"][i % 4]
    if i % 2:
        conditions = [{"field": "reporting_currency", "operator": "==", "value": CURRENCIES[i % len(CURRENCIES)]}]
    else:
        conditions = [{"field": "entity_id", "operator": "in", "value": [_entity(i, entities), _entity(i + 7, entities)]}]
    return {"stage": "final_calc", "conditions": conditions,
            "adjustments": [{"field": field, "operation": "multiply", "value": 0.98 if field in ("hqla", "asf") else 1.03}]}


def benchmark_rules(n: int, entities: int = 20, effective_date: str = "2024-01-01") -> list[dict]:
    """``n`` rules: two thirds deal-level, one sixth each aggregation and final."""
    deal = round(n * 2 / 3)
    aggregation = (n - deal) // 2
    final = n - deal - aggregation
    bodies = ([_deal_rule(i, entities) for i in range(deal)] + [_aggregation_rule(i, entities) for i in range(aggregation)]
              + [_final_rule(i, entities) for i in range(final)])
    width = max(3, len(str(n)))  # BENCH_001 .. BENCH_050 as before; BENCH_0001 .. BENCH_1000
    return [{"rule_id": f"BENCH_{k + 1:0{width}d}", "description": f"benchmark overlay {k + 1}", "priority": 100 + k % 5,
             "effective_date": effective_date, **body} for k, body in enumerate(bodies)]


def approve_all(store, rules: list[dict]) -> None:
    """Submit as one user and approve as another (four eyes), as a real rule set would be."""
    store.submit(rules, "bench_analyst")
    for rule in rules:
        store.approve(rule["rule_id"], "bench_approver")
