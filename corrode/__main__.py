from corrode.cli import main

main()
