"""Plain ``nn.Module`` nets; nothing here knows about Lightning or Hydra. One net per file, named after its
class (``small_cnn.py::SmallCNN``) and its config (``configs/net/small_cnn.yaml``). Bad arguments raise
``ValueError``/``TypeError`` naming the argument; the caller adds the config path (``bigmodel.models.build``)."""
