"""riskstrat's default settings: one YAML file per stage, installed with the package as ``riskstrat.configs``.

Copy this folder and point ``--config-dir`` or ``RISKSTRAT_CONFIG_DIR`` at the copy to change them
(docs/configuration.md lists every setting).
"""
