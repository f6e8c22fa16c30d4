"""targets/argocd"""
