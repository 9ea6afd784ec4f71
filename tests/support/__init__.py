"""What tests and benches share: the configuration builder (:mod:`.configs`), the
``s3lb`` subprocess runner (:mod:`.daemon`) and small helpers (:mod:`.helpers`).

Nothing here imports pytest: ``bench/*.py`` use these modules too.
"""
