"""The embedded local stack: stand-ins for the AWS services, used by the demo, the tests and docker-compose.

Nothing in this package is deployed to MWAA.
"""
