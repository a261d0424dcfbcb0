"""The data layer's error for a dataset that cannot be prepared or read."""


class DatasetError(ValueError):
    """A dataset cannot be split, or a prepared dataset folder is missing, incomplete or corrupt; the message
    names the folder (or the recordings) and the problem in one line."""
