"""fhs-bulk: register Flipkart Home Services ODS orders as SRMS service tickets."""

__version__ = "0.1.0"
