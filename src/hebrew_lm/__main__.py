from hebrew_lm.cli import main

raise SystemExit(main())
