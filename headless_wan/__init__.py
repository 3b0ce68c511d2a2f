"""headless_wan: a headless GPU worker that turns queued video-generation tasks into finished videos.

Importing the package has no side effects and imports neither torch nor diffusers.
"""

__version__ = "0.1.0"
