from .sdxl import DistriSDXLPipeline
from .dit import DistriDiTPipeline
from .pixartalpha import DistriPixArtAlphaPipeline