"""Instances: Beijing geography, the synthetic generator, and the validated loader."""

from instances.errors import InstanceError
from instances.instance import Instance
from instances.loader import load_instance

__all__ = ["Instance", "InstanceError", "load_instance"]
