from edgegw.cli import main

raise SystemExit(main())
