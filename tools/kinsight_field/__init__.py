"""kinsight-field: install, provision and look after Kinsight nodes, over mpremote."""

__version__ = "0.1.0"
