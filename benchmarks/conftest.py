import os
import sys

# The benchmark files share workload.py, which sits beside them.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
