"""genroute-worker: an OpenAI-style ``/v1/videos`` server for a diffusers video pipeline.

Why it exists: CogVideoX and Mochi 1 ship no HTTP server, while genroute speaks the
``/v1/videos`` job protocol to its self-hosted backends. This package loads one pipeline
from a local directory (exactly as real weights are loaded), renders one job at a time on
its device, and serves the job API genroute, vLLM-Omni and SGLang clients use.
"""

__version__ = "0.1.0"
