"""The Argo CD output kind: ApplicationSets and AppProjects (``target``), tenant namespaces
(``namespaces``) and canary Rollouts (``rollouts``).
"""
