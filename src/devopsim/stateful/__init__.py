"""The stateful tier: analytic models of PostgreSQL, Redis and Kafka.

``cache`` (Che's approximation with TTLs, a tuner), ``postgres`` (replication
lag, Patroni failover, multi-master conflicts, backups) and ``kafka``
(partition assignment, consumer lag, the KEDA Kafka scaler). The data planes
see datastores as synthetic services (:mod:`devopsim.model.datastores`); the
time-varying parts run as a control loop (:mod:`devopsim.stateful.loop`).
"""
