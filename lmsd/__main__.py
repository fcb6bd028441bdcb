from lmsd.cli.main import main

main()
