"""targets/terraform"""
