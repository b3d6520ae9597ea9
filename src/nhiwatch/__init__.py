"""nhiwatch: watch AWS non-human identities in CloudTrail."""

__version__ = "0.1.0"
