"""The delivery pipeline: wiring (``_wiring``), ack tracking (``_acks``), object
readers (``_objects``) and checkpoints (``_checkpoints``).

Nothing is re-exported here on purpose: sources and sinks build on ``_acks`` and
``_objects`` while ``_wiring`` builds on them, so importing the package must not pull
the wiring in (an import cycle). Import from the modules.
"""
