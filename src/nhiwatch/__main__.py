from nhiwatch.cli.app import main

main()
