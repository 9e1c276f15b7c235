"""Keys of earlier versions that moved: the network's arguments moved from ``model.<key>`` to
``model.net.<key>`` when networks became swappable (``model/net``). The documented spelling is
``model.net.<key>``; an old key is refused with one line naming the new one, wherever it is written: on the
command line or in a sweep (``cli.errors``, from Hydra's "no such key"), in a config file
(``config.rules``). Nothing rewrites the user's command line.
"""

from __future__ import annotations

# model.<key> of earlier versions that are the network's arguments now (model.net.<key>)
NETWORK_ARGUMENTS = ("activation", "batch_norm", "width", "features_start", "depth", "up_mode")
