"""The Terraform output kind: one root per blast radius (``target``), subnet layout
(``addressing``), pinned module versions (``modules``) and ``terraform fmt`` layout (``hcl``).
"""
