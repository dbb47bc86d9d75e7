"""The ``torchtransfer`` command line (installed as ``torchtransfer_cli``): the layer above the flows.

Commands import Prefect, MLflow, torch and the flows inside their bodies, so ``--help`` stays quick.
"""
