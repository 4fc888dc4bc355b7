import sys

from regkit.workbook.cli import main

sys.exit(main())
