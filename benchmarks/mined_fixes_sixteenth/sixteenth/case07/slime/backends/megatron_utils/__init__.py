# (benchmark cut: deep_ep.Buffer.__init__ patch and logging setup)
from .actor import MegatronTrainRayActor

# (benchmark cut: .arguments, .checkpoint, .initialize, .model re-exports)
