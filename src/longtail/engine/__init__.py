"""The engine: longtail's use cases as plain functions over a store and the project's
settings. `Project`, the CLI, the demo and (later) the service, `longtail run` and Ray
workers call these; none of them holds logic of its own.

    data        ingest a file, embed samples
    labels      record label events (label / skip / unsure), the label schema
    rounds      plan a round, list and cancel rounds, the arms' outcomes auto learns from
    history     the run history per round (`longtail history`, GET /admin/history)
    training    train (and the eval, lift and stopping updates that follow)
    evaluation  evaluate, re-score, lift, curves, forecast, stopping
    simulation  backtest with an oracle
    status      counts, metrics, verdict (catalog only: fast)

Imports point one way: engine -> loop / evaluation / learners / strategies / ingest ->
store. Modules load lazily so a command pays only for what it uses.
"""
