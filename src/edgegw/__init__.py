"""edgegw: an asyncio edge gateway that watches pumps and other machines."""

__version__ = "0.1.0"
