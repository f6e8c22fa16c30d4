"""What operators and CI run around a render: affected roots, cost, the destructive-change
guard, lint, smoke tests, CIDR allocation.
"""
