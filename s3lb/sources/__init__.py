"""Where object tasks come from: SQS notifications (``run``) and listings (``import``)."""
