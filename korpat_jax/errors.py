"""The one exception type that the command line turns into a one-line error."""


class KorpatError(Exception):
  """A user-facing error: bad input, bad config, missing file.

  The message must name what was wrong (file, line, config key) in one line.
  """


class ConfigError(KorpatError):
  """A config key or value that cannot be used."""
