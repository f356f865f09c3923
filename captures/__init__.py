"""Capture tooling: pcap writing, stream reassembly, replay and inspection."""
