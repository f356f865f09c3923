"""The SIP database: subscribers, Milenage AKA, SQN management, migration bindings."""
