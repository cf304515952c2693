"""Control loops that observe the platform and act on it: autoscalers and rollout controllers.

They read what a real controller would read (metrics with their delays, pod
status) and act only through the model (:class:`devopsim.model.platform.Platform`).
"""
